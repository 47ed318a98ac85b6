"""wsss: weakly supervised semantic segmentation, from image-level labels to segmentation models.

Importing the package has no side effects; see the submodules for the library API.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
