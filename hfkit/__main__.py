from hfkit.cli import main
from hfkit.distributed import shut_down

code = main()
shut_down()  # launched processes leave their process group before exiting
raise SystemExit(code)
