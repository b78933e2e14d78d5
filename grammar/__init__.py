"""The omniroute expression language: a safe, fast, TaskRouter-compatible evaluator.

>>> expr = compile_expression('task.language IN worker.languages AND worker.level >= 3')
>>> expr.evaluate({"task": {"language": "es"}, "worker": {"languages": ["es"], "level": 4}})
True
>>> sorted(expr.references)
['task.language', 'worker.languages', 'worker.level']
>>> compile_expression('skills HAS "support"', default_root="worker").references
frozenset({'worker.skills'})
"""

from .compiler import KNOWN_ROOTS
from .errors import ExpressionError, ExpressionSyntaxError
from .expression import Expression, OrderBy, compile_expression, compile_order_by
from .parser import MAX_ARRAY_LENGTH, MAX_DEPTH, MAX_SOURCE_LENGTH

__all__ = [
    "KNOWN_ROOTS",
    "MAX_ARRAY_LENGTH",
    "MAX_DEPTH",
    "MAX_SOURCE_LENGTH",
    "Expression",
    "ExpressionError",
    "ExpressionSyntaxError",
    "OrderBy",
    "compile_expression",
    "compile_order_by",
]
