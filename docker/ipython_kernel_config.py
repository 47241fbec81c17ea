"""IPython kernel settings of the runtime image (/etc/ipython/ipython_kernel_config.py).

Every kernel loads the ipydeps extension, so %pip install and !pip install go through
ipydeps (prebuilt apks or wheels from the configured repository) like ipydeps.pip().
"""

c = get_config()  # type: ignore[name-defined]  # noqa: F821 - injected by traitlets

c.InteractiveShellApp.extensions = ["ipydeps"]
