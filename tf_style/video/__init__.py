"""Video with temporal consistency, after Ruder, Dosovitskiy & Brox, *Artistic style transfer for
videos* (GCPR 2016).

- flow.py: optical flow (OpenCV), warping, and the paper's reliability mask c;
- io.py: clips (video files through PyAV, or directories of frames), read lazily, written
  atomically;
- stylize_video.py: the frame loop (warped start + short-term temporal loss), a generator;
- resumable.py: a clip's finished frames kept on disk, so that a stopped run can go on.

Needs the `video` extra (opencv-python-headless, av). Nothing is imported here, so that importing
one module does not pay for the others (flow and io have no TensorFlow).
"""
