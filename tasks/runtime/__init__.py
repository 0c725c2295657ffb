"""Running tasks on django-q2: the job registry, TaskContext, the worker entry point, the watchdog."""
