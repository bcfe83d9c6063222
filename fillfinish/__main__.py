"""`python -m fillfinish` = the `fillfinish` command."""

from fillfinish.cli import main

main()
