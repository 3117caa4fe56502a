"""The `midonet` command line, thin over `midonet.client` (and, to serve, over `midonet.api`).

    main       -- the typer app and `main()` (the console script)
    serve      -- `midonet up` (all-in-one) and `midonet api`: store + users + uvicorn, clean stop on signals
    resources  -- `list | show | create | update | delete KIND`: generic commands over the Application root
    hosts      -- `host register | list`
    settings   -- API URL and credentials: option > environment > ~/.midonetrc > default
    output     -- rich tables, `--json`, one-line errors on stderr with exit status 1

May import: everything (it is the top layer).
"""
