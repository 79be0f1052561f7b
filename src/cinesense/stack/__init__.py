"""The whole platform on one machine: object store, MLflow, Airflow, the API, the UI and
nginx as local processes under supervisord (``make up`` / ``cinesense stack up``).

Every service starts through one entrypoint, ``cinesense stack run SERVICE``
(:mod:`cinesense.stack.services`), which renders the service's configuration from the
settings (``CINESENSE_STACK__*``) and the generated secrets, then replaces itself with the
real server. supervisord runs those commands here; the containers of the Docker deployment
run the very same commands.

Modules: ``layout`` (names, paths, ports, URLs), ``secrets`` (generated once, kept in a
private env file), ``services`` (what each service runs), ``supervisor`` (the supervisord
configuration and control), ``control`` (up, down, status, logs, credentials),
``champion`` (the first champion from the shipped bundle), and ``health`` (what "healthy"
means for each service).
"""
