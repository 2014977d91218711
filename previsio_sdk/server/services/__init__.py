"""Domain rules of the platform's resources, one module per resource.

Routes translate HTTP into calls of these functions and their errors into statuses; the rules themselves
(what a change carries along, what a deletion takes with it, how a secret stands in for a missing one) live
here, where any caller (a route, a command, a job) gets the same behaviour.
"""
