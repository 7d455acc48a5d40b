"""Pure query functions over an opened Index."""
