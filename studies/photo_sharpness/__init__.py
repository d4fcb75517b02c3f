"""How sharp an edited photo's face stays: the mean |Laplacian| of the face, edited against unedited, over the
photos that ship in packages (docs/edit_photo.md). `run.py` is the whole study."""
