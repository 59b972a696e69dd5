"""Describing the machine: probing its facts and writing the system description a submission needs."""
