"""The web dashboard ``gitops run`` serves at ``/``: what runs where, from which commit, and why
it is not healthy, live. Server-rendered pages (every value escaped by the template engine), a
few lines of script that re-render a page when the event stream says something changed, and
actions behind a sign-in with the API token. Reads what the API reads (``gitops.serve.api``).
"""
