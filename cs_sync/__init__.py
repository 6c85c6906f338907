"""cs_sync: archive Cybershake simulation versions to an rclone remote and bring parts back."""

__version__ = "0.1.0"
