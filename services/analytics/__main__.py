from analytics.entrypoints.main import main

main()
