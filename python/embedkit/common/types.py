from . import Device, ImageInput, OnnxProvider, PathInput

__all__ = ["Device", "ImageInput", "OnnxProvider", "PathInput"]
