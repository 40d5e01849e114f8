from ablate.cli import program

program()
