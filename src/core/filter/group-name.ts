/** A group's name: what `group = NAME` and `fleetd groups create NAME` accept (a letter or digit first). */
export const GROUP_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
