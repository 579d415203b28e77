"""The HTTP plumbing that the Manager's API and its dashboard share: token checks, body limits,
request dependencies and the embedded server. Neither side imports the other; both import this."""
