"""Running a function over many inputs: in threads/processes on this machine (``local``) or on a Ray cluster
(``ray_engine``), committing results as they come, and counting the inputs that failed (``failures``)."""
