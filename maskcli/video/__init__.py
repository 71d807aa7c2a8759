"""Videos as batches of frames: the runner that streams a video's frames through a job
(:mod:`maskcli.video.runner`) and the temporal smoothing of their masks (:mod:`maskcli.video.temporal`)."""
