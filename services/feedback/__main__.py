from feedback.entrypoints.main import main

main()
