from services.cli.main import main

if __name__ == "__main__":  # also the guard that worker processes (dphp publish) need
    main()
