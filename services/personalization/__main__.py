from personalization.entrypoints.main import main

main()
