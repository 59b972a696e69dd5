"""Submission: packaging finished runs into the round's results tree, and checking a tree."""
