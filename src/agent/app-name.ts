/** App names as Heroku allows them: lower-case letters, digits and dashes, starting with a letter. */
export const APP_NAME = /^[a-z][a-z0-9-]{1,29}$/
