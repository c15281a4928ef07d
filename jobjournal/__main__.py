from jobjournal.cli import main

main()
