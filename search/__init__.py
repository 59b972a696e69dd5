"""Hardware-aware model search: the zoo of known architectures and the DeciNet-style search
(a stage after ``pipeline``; the parts that build torch models import ``models`` lazily)."""
