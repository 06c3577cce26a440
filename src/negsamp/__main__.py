from negsamp.cli import main

main()
