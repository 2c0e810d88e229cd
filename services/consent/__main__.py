from consent.entrypoints.main import main

main()
