// The console's texts in English and Spanish. `t("key", {name: "x"})` fills `{name}`.

const TEXT = {
  en: {
    app: "Coach console", email: "E-mail", password: "Password", login: "Log in",
    logout: "Log out", loginFailed: "Wrong e-mail or password", language: "Language",
    forgot: "Forgot your password?", sendLink: "E-mail me a link", backToLogin: "Back to log in",
    resetSent: "If an account has this address, a link to choose a new password is on its way (valid 30 minutes).",
    newPassword: "New password", setPassword: "Set the password",
    passwordSet: "Your password is changed. Log in with it.",
    unconfirmed: "Confirm your e-mail address first: open the link we sent to it.",
    resendLink: "Send the link again", linkResent: "A new link is on its way (valid 24 hours).",
    confirming: "Confirming your e-mail address…", confirmed: "Your e-mail address is confirmed. Log in.",
    inbox: "Inbox", knowledge: "Knowledge", widget: "Widget", channels: "Channels",
    programs: "Programs", analytics: "Analytics", team: "Team", skip: "Skip to content",
    live: "Live", offline: "Reconnecting…",
    noConversations: "No conversations yet. Share your widget or connect a channel.",
    pickConversation: "Pick a conversation to read it.",
    search: "Search conversations", searchHint: "Words, a name or a number",
    noMatches: "No conversation matches.", view: "Show", viewAll: "All", viewMine: "Mine",
    viewUnassigned: "Unassigned",
    waiting: "Waiting for you", human: "You answer", open: "Coach answers", resolved: "Resolved", snoozed: "Snoozed",
    takeOver: "Take over", handBack: "Hand back to the coach", reply: "Reply",
    replyPlaceholder: "Write a reply… (Enter sends, Shift+Enter for a new line)",
    resolve: "Resolve", reopen: "Reopen", snooze: "Snooze", snoozeHint: "Set aside for a day, or until the person writes",
    labels: "Labels", addLabel: "Add a label…", removeLabel: "Remove {label}", notes: "Private notes", addNote: "A note for the team (never sent)",
    saveNote: "Add note", memory: "What the coach remembers", addMemory: "Something the coach should know", remember: "Remember",
    memory_goal: "Goal", memory_fact: "Fact", memory_note: "Note", memoryKind: "Kind", fromContact: "their words", fromTeam: "team",
    forget: "Forget: {text}", cannedReplies: "Canned replies", shortcut: "Shortcut", cannedText: "Text", addCanned: "Save reply",
    cannedHelp: "Type / and the shortcut in a reply to insert the text.",
    send: "Send", typing: "The coach is writing…", earlier: "Show earlier messages", unread: "{n} unread",
    handoffAsked: "asked for a person", handoffLow: "the coach was not sure", handoffQuota: "today's answer quota is spent",
    handoffCrisis: "URGENT: the message may signal a crisis; help resources were sent", crisis: "Possible crisis (urgent)",
    needsYou: "A conversation needs you ({why}): “{question}”", sources: "Sources",
    pending: "queued", sent: "sent", delivered: "delivered", read: "read", failed: "failed",
    upload: "Upload documents", dropHere: "Drop PDF, DOCX, TXT, Markdown or HTML files here, or",
    choose: "choose files", addUrl: "Add a web page", url: "Page address", add: "Add",
    title: "Title", status: "Status", chunks: "Chunks", actions: "Actions",
    reindex: "Re-index", delete: "Delete", confirmDelete: "Delete {name}?",
    queued: "queued", processing: "processing", ready: "ready",
    noDocuments: "No documents yet: upload the material your coach should know.",
    testQuestion: "Test a question", ask: "Search", question: "Question",
    confident: "The coach would answer from these passages.",
    notConfident: "Nothing relevant enough: the coach would say it does not know and ask for you.",
    score: "score", page: "p. {n}",
    designer: "Widget designer", widgetChannel: "Widget channel", newWidget: "New widget",
    color: "Accent colour", greeting: "Greeting", position: "Position", left: "left", right: "right",
    widgetLanguage: "Widget language", browser: "the visitor's browser",
    origins: "Allowed origins (one per line; empty: any page)", save: "Save", saved: "Saved",
    snippet: "Paste this into any page:", copy: "Copy", copied: "Copied",
    preview: "Preview", previewHint: "This is how the widget looks with these settings.",
    name: "Name", kind: "Kind", webhookUrl: "Webhook URL", enabled: "enabled", disabled: "disabled",
    connect: "Connect", connected: "Connected: {name}",
    waToken: "Access token", waPhone: "Phone number ID", waSecret: "App secret",
    waVerify: "Verify token (type the same in Meta's dashboard)",
    tgToken: "Bot token from @BotFather", tgMode: "Updates", webhook: "webhook", polling: "polling",
    waHelp: "From Meta's app dashboard (WhatsApp > API setup). Then give Meta the webhook URL and verify token shown below.",
    tgHelp: "Talk to @BotFather, create a bot and paste its token. The gateway registers its webhook itself (polling needs no public address).",
    notifyTitle: "Handoff webhook", notifyHelp: "We POST a signed JSON notice here when a conversation needs a person.",
    notifySecret: "Signing secret (shown once): {secret}", remove: "Remove",
    newProgram: "New program", goal: "Goal", keywords: "Enrollment keywords (comma separated)",
    steps: "Steps", addStep: "Add step", message: "Message", buttons: "Buttons (comma separated)",
    timing: "Timing", afterMinutes: "minutes after the previous step", dayAt: "day {day} at",
    immediately: "at once", day: "Day", at: "At", stepId: "Step id", remove_: "Remove",
    enroll: "Enroll a contact", contact: "Contact", enrolled: "Enrolled",
    funnel: "Funnel", sentN: "sent", repliedN: "replied", noPrograms: "No programs yet.",
    active: "active", paused: "paused", archived: "archived", edit: "Edit", create: "Create",
    period: "Period", days: "{n} days", messagesPerDay: "Messages per day, by channel",
    latency: "Answer time (seconds)", p50: "median", p95: "95th percentile",
    unanswered: "Questions the coach handed to you", askedHuman: "Asked for a person",
    lowConfidence: "Not covered by the knowledge", quotaReached: "Daily answer quota spent", noData: "No data in this period yet.",
    members: "Members", pendingInvites: "Pending invitations", expires: "Expires", role: "Role", invite: "Invite", inviteLink: "Invitation token (send it to them): {token}",
    apiKeys: "API keys", newKey: "New key", keyShown: "Copy the key now, it is shown once: {key}",
    revoke: "Revoke", created: "Created", you: "you", inbound: "from contacts", outbound: "from the coach",
    error: "Something went wrong: {msg}", required: "Required", contactsOf: "contacts",
    tokensPerDay: "Model tokens per day", promptTokens: "prompt", cachedTokens: "prompt (cached persona)",
    completionTokens: "generated",
  },
  es: {
    app: "Consola del coach", email: "Correo", password: "Contraseña", login: "Entrar",
    logout: "Salir", loginFailed: "Correo o contraseña incorrectos", language: "Idioma",
    forgot: "¿Olvidaste tu contraseña?", sendLink: "Enviarme un enlace", backToLogin: "Volver a entrar",
    resetSent: "Si hay una cuenta con este correo, le llega un enlace para elegir otra contraseña (válido 30 minutos).",
    newPassword: "Nueva contraseña", setPassword: "Guardar la contraseña",
    passwordSet: "Tu contraseña ha cambiado. Entra con ella.",
    unconfirmed: "Primero confirma tu correo: abre el enlace que te enviamos.",
    resendLink: "Enviar el enlace otra vez", linkResent: "Te llega un enlace nuevo (válido 24 horas).",
    confirming: "Confirmando tu correo…", confirmed: "Tu correo está confirmado. Entra.",
    inbox: "Bandeja", knowledge: "Conocimiento", widget: "Widget", channels: "Canales",
    programs: "Programas", analytics: "Analítica", team: "Equipo", skip: "Ir al contenido",
    live: "En vivo", offline: "Reconectando…",
    noConversations: "Aún no hay conversaciones. Comparte tu widget o conecta un canal.",
    pickConversation: "Elige una conversación para leerla.",
    search: "Buscar conversaciones", searchHint: "Palabras, un nombre o un número",
    noMatches: "Ninguna conversación coincide.", view: "Mostrar", viewAll: "Todas", viewMine: "Mías",
    viewUnassigned: "Sin asignar",
    waiting: "Te espera", human: "Respondes tú", open: "Responde el coach", resolved: "Resuelta", snoozed: "Pospuesta",
    takeOver: "Tomar el control", handBack: "Devolver al coach", reply: "Responder",
    replyPlaceholder: "Escribe una respuesta… (Intro envía, Mayús+Intro nueva línea)",
    resolve: "Resolver", reopen: "Reabrir", snooze: "Posponer", snoozeHint: "Apartar un día, o hasta que la persona escriba",
    labels: "Etiquetas", addLabel: "Añadir etiqueta…", removeLabel: "Quitar {label}", notes: "Notas privadas", addNote: "Una nota para el equipo (nunca se envía)",
    saveNote: "Añadir nota", memory: "Lo que el coach recuerda", addMemory: "Algo que el coach debe saber", remember: "Recordar",
    memory_goal: "Meta", memory_fact: "Dato", memory_note: "Nota", memoryKind: "Tipo", fromContact: "sus palabras", fromTeam: "equipo",
    forget: "Olvidar: {text}", cannedReplies: "Respuestas guardadas", shortcut: "Atajo", cannedText: "Texto", addCanned: "Guardar respuesta",
    cannedHelp: "Escribe / y el atajo en una respuesta para insertar el texto.",
    send: "Enviar", typing: "El coach está escribiendo…", earlier: "Ver mensajes anteriores", unread: "{n} sin leer",
    handoffAsked: "pidió hablar con una persona", handoffLow: "el coach no estaba seguro", handoffQuota: "se agotó la cuota diaria de respuestas",
    handoffCrisis: "URGENTE: el mensaje puede indicar una crisis; se enviaron recursos de ayuda", crisis: "Posible crisis (urgente)",
    needsYou: "Una conversación te necesita ({why}): «{question}»", sources: "Fuentes",
    pending: "en cola", sent: "enviado", delivered: "entregado", read: "leído", failed: "falló",
    upload: "Subir documentos", dropHere: "Suelta aquí archivos PDF, DOCX, TXT, Markdown o HTML, o",
    choose: "elige archivos", addUrl: "Añadir una página web", url: "Dirección de la página", add: "Añadir",
    title: "Título", status: "Estado", chunks: "Fragmentos", actions: "Acciones",
    reindex: "Reindexar", delete: "Borrar", confirmDelete: "¿Borrar {name}?",
    queued: "en cola", processing: "procesando", ready: "listo",
    noDocuments: "Aún no hay documentos: sube el material que tu coach debe conocer.",
    testQuestion: "Prueba una pregunta", ask: "Buscar", question: "Pregunta",
    confident: "El coach respondería con estos pasajes.",
    notConfident: "Nada suficientemente relevante: el coach diría que no lo sabe y te avisaría.",
    score: "puntuación", page: "p. {n}",
    designer: "Diseño del widget", widgetChannel: "Canal del widget", newWidget: "Nuevo widget",
    color: "Color de acento", greeting: "Saludo", position: "Posición", left: "izquierda", right: "derecha",
    widgetLanguage: "Idioma del widget", browser: "el del navegador del visitante",
    origins: "Orígenes permitidos (uno por línea; vacío: cualquier página)", save: "Guardar", saved: "Guardado",
    snippet: "Pega esto en cualquier página:", copy: "Copiar", copied: "Copiado",
    preview: "Vista previa", previewHint: "Así se ve el widget con estos ajustes.",
    name: "Nombre", kind: "Tipo", webhookUrl: "URL del webhook", enabled: "activo", disabled: "inactivo",
    connect: "Conectar", connected: "Conectado: {name}",
    waToken: "Token de acceso", waPhone: "ID del número de teléfono", waSecret: "Secreto de la app",
    waVerify: "Token de verificación (escribe el mismo en el panel de Meta)",
    tgToken: "Token del bot de @BotFather", tgMode: "Actualizaciones", webhook: "webhook", polling: "sondeo",
    waHelp: "Del panel de la app de Meta (WhatsApp > Configuración de la API). Luego da a Meta la URL del webhook y el token de verificación de abajo.",
    tgHelp: "Habla con @BotFather, crea un bot y pega su token. La pasarela registra su webhook sola (el sondeo no necesita dirección pública).",
    notifyTitle: "Webhook de traspaso", notifyHelp: "Enviamos aquí un aviso JSON firmado cuando una conversación necesita a una persona.",
    notifySecret: "Secreto de firma (se muestra una vez): {secret}", remove: "Quitar",
    newProgram: "Nuevo programa", goal: "Objetivo", keywords: "Palabras de inscripción (separadas por comas)",
    steps: "Pasos", addStep: "Añadir paso", message: "Mensaje", buttons: "Botones (separados por comas)",
    timing: "Momento", afterMinutes: "minutos después del paso anterior", dayAt: "día {day} a las",
    immediately: "enseguida", day: "Día", at: "A las", stepId: "Id del paso", remove_: "Quitar",
    enroll: "Inscribir un contacto", contact: "Contacto", enrolled: "Inscrito",
    funnel: "Embudo", sentN: "enviados", repliedN: "respondidos", noPrograms: "Aún no hay programas.",
    active: "activo", paused: "en pausa", archived: "archivado", edit: "Editar", create: "Crear",
    period: "Periodo", days: "{n} días", messagesPerDay: "Mensajes por día, por canal",
    latency: "Tiempo de respuesta (segundos)", p50: "mediana", p95: "percentil 95",
    unanswered: "Preguntas que el coach te pasó", askedHuman: "Pidieron una persona",
    lowConfidence: "Fuera del conocimiento", quotaReached: "Cuota diaria agotada", noData: "Aún no hay datos en este periodo.",
    members: "Miembros", pendingInvites: "Invitaciones pendientes", expires: "Caduca", role: "Rol", invite: "Invitar", inviteLink: "Token de invitación (envíaselo): {token}",
    apiKeys: "Claves de API", newKey: "Nueva clave", keyShown: "Copia la clave ahora, solo se muestra una vez: {key}",
    revoke: "Revocar", created: "Creada", you: "tú", inbound: "de contactos", outbound: "del coach",
    error: "Algo salió mal: {msg}", required: "Obligatorio", contactsOf: "contactos",
    tokensPerDay: "Tokens del modelo por día", promptTokens: "prompt", cachedTokens: "prompt (persona en caché)",
    completionTokens: "generados",
  },
};

let current = pick();

function pick() {
  const saved = localStorage.getItem("coach.lang");
  if (saved && TEXT[saved]) return saved;
  for (const l of navigator.languages || [navigator.language || "en"]) {
    const two = String(l).slice(0, 2).toLowerCase();
    if (TEXT[two]) return two;
  }
  return "en";
}

export function lang() {
  return current;
}

export function setLang(l) {
  if (!TEXT[l]) return;
  current = l;
  localStorage.setItem("coach.lang", l);
  document.documentElement.lang = l;
}

export function t(key, vars = {}) {
  const text = TEXT[current][key] ?? TEXT.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, k) => (k in vars ? String(vars[k]) : `{${k}}`));
}

export const LANGS = Object.keys(TEXT);

/** Every text, by language (tests check each language has every key). */
export const TEXTS = TEXT;
