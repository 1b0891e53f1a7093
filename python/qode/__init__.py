"""qode: differentiable ODE solvers, quantum circuits and multi-agent
interaction forces with a C core."""


def __getattr__(name: str):
    # qode.social needs torch; import it on first use so that `import qode`
    # works without torch.
    if name == "social":
        import importlib

        return importlib.import_module("qode.social")
    raise AttributeError(f"module 'qode' has no attribute {name!r}")
