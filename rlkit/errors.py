"""The one exception type that user-caused errors raise across rlkit, envs and agents."""

__all__ = ["RLKitError"]


class RLKitError(ValueError):
    """A user-caused error: bad argument, unknown id, bad flag, corrupt or mismatched checkpoint.

    The message names the argument and the expected value. Command-line tools turn it into one
    line on stderr and exit status 2.
    """
