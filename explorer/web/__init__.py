"""The web explorer: look around a model in the browser (Stateright's Explorer is the model).

``smcd-check explore --serve`` starts it. Start at the initial states, click an action to
step, see every field of the state and which properties hold there, the sequence chart of the
path so far, and a link for the path that names the same states after a restart. Read-only:
no request changes a file. Modules: :mod:`.session` (paths and the models served),
:mod:`.fields` (states as HTML), :mod:`.app` (the Starlette app), :mod:`.server` (uvicorn).
"""
