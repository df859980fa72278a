from eligibility.cli import main

main()
