"""BasePolynomial: the weight plumbing that every polynomial layer shares, in one place."""
from keras import constraints
from keras import initializers
from keras import layers
from keras import regularizers

from tn_keras.layers.polynomial import default_factor_initializer

# What each weight group is given, with the Keras module that gets and serialises it, in the
# order get_config lists them.
OPTION_KINDS = (("initializer", initializers), ("regularizer", regularizers),
                ("constraint", constraints))
# A group whose initializer is None gets this default; other groups keep Keras's meaning of None.
DEFAULT_INITIALIZERS = {"factor": default_factor_initializer}


class BasePolynomial(layers.Layer):
    """Base class of the polynomial layers (`PolyCG`, `DilatedPolyCG`, `TaylorDense`).

    It holds what the layers share about their weights, as Keras's ``BaseConv`` holds it for
    the convolutions: each layer has a few *weight groups* (the linear ``kernel``, the product
    ``factor`` kernel, TaylorDense's exact ``quadratic`` kernel, the ``bias``), and every group
    has an initializer, a regularizer and a constraint, passed to the constructor as
    ``<group>_initializer``, ``<group>_regularizer`` and ``<group>_constraint``. This class
    turns those arguments into Keras objects (``<group>_initializer`` etc. attributes), creates
    each group's weight with them, and serialises them for `get_config`, so the three steps
    cannot drift apart between layers. The maths stays in the layers themselves.

    A subclass lists its groups in `weight_groups` (group -> name of its weight), passes the
    options on to ``super().__init__`` by keyword, builds each weight with `add_group_weight`
    and adds `weight_options_config` to its `get_config`. A ``factor`` initializer of None
    means `tn_keras.layers.polynomial.default_factor_initializer` (products start small).
    """

    # Group -> name of its weight, in the order get_config lists the groups' options.
    weight_groups = {}

    def __init__(self, activity_regularizer=None, **kwargs):
        # The groups' options leave kwargs first: keras.layers.Layer refuses unknown keywords.
        options = {f"{group}_{kind}": kwargs.pop(f"{group}_{kind}", None)
                   for group in self.weight_groups for kind, _ in OPTION_KINDS}
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        for group in self.weight_groups:
            for kind, module in OPTION_KINDS:
                value = options[f"{group}_{kind}"]
                if value is None and kind == "initializer" and group in DEFAULT_INITIALIZERS:
                    value = DEFAULT_INITIALIZERS[group]()
                setattr(self, f"{group}_{kind}", module.get(value))

    def add_group_weight(self, group, shape):
        """Create the weight of ``group`` with its initializer, regularizer and constraint."""
        return self.add_weight(
            name=self.weight_groups[group],
            shape=shape,
            initializer=getattr(self, f"{group}_initializer"),
            regularizer=getattr(self, f"{group}_regularizer"),
            constraint=getattr(self, f"{group}_constraint"),
        )

    def weight_options_config(self):
        """The groups' options, serialised: every initializer, then every regularizer (the
        activity regularizer last), then every constraint."""
        config = {}
        for kind, module in OPTION_KINDS:
            for group in self.weight_groups:
                config[f"{group}_{kind}"] = module.serialize(getattr(self, f"{group}_{kind}"))
            if kind == "regularizer":
                config["activity_regularizer"] = module.serialize(self.activity_regularizer)
        return config
