from valerix.cli import main

main()
