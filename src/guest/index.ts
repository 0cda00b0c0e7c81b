// The public API of src/guest; filled in as the area lands.
export {};
