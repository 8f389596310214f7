"""`python -m r1kit.cli ...` is `r1kit ...`."""

from r1kit.cli import main

if __name__ == "__main__":
    main()
