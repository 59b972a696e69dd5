"""The bottom layer every stage may import: errors, small file helpers, name suggestions,
the LoadGen conf format and the vocabulary of a LoadGen test. It imports nothing of ours."""
