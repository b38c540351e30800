"""Model definitions of a small image-classification project."""
