"""The lab console: a live page of the actors, fed by what the lab already emits.

`loglines` reads the app's and daprd's log lines, `state` keeps what the page shows, `sources`
polls daprd's metadata and metrics and Redis, and `server` pushes it all to the browser.
"""
