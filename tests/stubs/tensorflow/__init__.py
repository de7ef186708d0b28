"""Stand-in for tensorflow, on the path only of the hearvalidator test's subprocess.

hearvalidator imports tensorflow at module level but uses it only for TF models (the
`isinstance(model, tf.Module)` check, then its TF code path). Real tensorflow is a large
download that melos never needs, so this stub offers just the class that check reads.
Keep it off sys.path elsewhere: transformers would take it for a real installation.
"""


class Module:
    """No melos model is a tf.Module, so the validator takes its PyTorch path."""
