"""A plugin that needs two small packages the hub lacks: its environment is built at its first start."""

from scopeflow import op

PLUGIN = {
    "id": "env-small",
    "name": "Env small",
    "version": "0.1.0",
    "requirements": ["tabulate==0.8.10", "termcolor==2.4.0"],
}


@op
def ping() -> str:
    import tabulate
    import termcolor

    return f"{tabulate.__version__} {termcolor.__name__}"
