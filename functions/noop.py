"""Does nothing: measures the platform's own overhead."""


def main(args):
    return {}
