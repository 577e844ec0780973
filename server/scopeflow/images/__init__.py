"""Images: the built-in samples, image files in and out (TIFF/OME-TIFF, PNG), and their HTTP doors."""
