"""Decision surfaces: where people see requests and decide them (Slack, the console, …).

`port` is the contract every surface implements; `installed` is the one list of surfaces this
deployment knows, named by module so the core never imports an adapter.
"""
