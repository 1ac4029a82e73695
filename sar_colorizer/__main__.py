"""`python -m sar_colorizer`: the `sarcolor` command."""

from sar_colorizer.cli import main

if __name__ == "__main__":
    main()
