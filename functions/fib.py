"""The seed's example: the Fibonacci number of `number`, computed recursively on purpose so
that `number` 30 takes a noticeable time (about a second)."""


def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def main(args):
    num = args.get("number", "30")
    return {"fibonacci": fib(int(num))}
