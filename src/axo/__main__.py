from axo.cli import main

main()
