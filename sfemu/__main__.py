"""`python -m sfemu serve ...`: the emulator as a module, as tests and the demo start it."""

from sfemu.cli import emulator

if __name__ == "__main__":
    emulator(prog_name="python -m sfemu")
