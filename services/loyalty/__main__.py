from loyalty.entrypoints.main import main

main()
