/**
 * The words the generated text model knows: topic clusters and common words. The
 * generator gives every topic a direction in embedding space and pulls its words
 * towards it, so documents about one topic land near each other (see token-embeddings.ts).
 */

/** Split a whitespace-separated list. */
function words(list: string): readonly string[] {
  return list.split(/\s+/).filter((w) => w !== "");
}

/** Topic name → its words (lower case, ASCII, each word in one topic only). */
export const TOPIC_WORDS: Readonly<Record<string, readonly string[]>> = {
  astronomy: words(`
   planet star galaxy telescope orbit comet asteroid nebula moon solar lunar eclipse
   cosmos gravity meteor supernova astronaut rocket satellite observatory constellation
   jupiter saturn mars venus mercury neptune uranus pulsar quasar redshift spacecraft
   launch crater horizon celestial stellar cosmic light universe exoplanet interstellar
   sky dwarf aurora zodiac
 `),
  cooking: words(`
   recipe oven flour butter sugar garlic onion pepper salt simmer roast bake sauce soup
   kitchen chef knife pan skillet dough bread pasta cheese tomato basil olive oil
   vinegar spice cinnamon dessert cake cookie broth grill fry stew ingredient taste
   flavor lemon egg cream whisk dinner lunch breakfast meal
 `),
  football: words(`
   goal striker midfielder defender goalkeeper referee penalty match league stadium
   coach team season tournament championship kick pass tackle offside corner header
   foul score fans captain transfer club derby trophy final semifinal pitch dribble cup
   squad winger substitute halftime victory draw defeat assist forward training injury
   keeper whistle jersey
 `),
  finance: words(`
   market stock bond investor dividend portfolio interest inflation bank loan credit
   debt equity shares profit revenue earnings budget tax currency exchange trader fund
   hedge asset capital mortgage savings pension broker yield recession growth economy
   price valuation audit account payment wealth finance fiscal liquidity volatility
   merger ipo quarterly
 `),
  medicine: words(`
   doctor patient hospital nurse disease symptom diagnosis therapy vaccine virus
   infection surgery surgeon clinic medicine dose tablet prescription fever blood heart
   lung kidney liver cancer tumor antibiotic immune treatment recovery pain chronic
   allergy insulin diabetes pharmacy cardiology oncology wound bone fracture ambulance
   emergency health illness cough pulse
 `),
  music: words(`
   guitar piano violin drum melody harmony rhythm chord song album concert orchestra
   symphony composer singer band lyrics tempo bass jazz blues opera choir note scale
   octave tune record studio microphone stage festival playlist solo cello trumpet
   saxophone flute rehearsal acoustic vocal beat remix chorus verse encore conductor
 `),
  computing: words(`
   computer software hardware program code compiler database server network algorithm
   processor memory cache kernel thread function variable debug bug python javascript
   linux cloud container cluster query index api protocol encryption password browser
   internet website laptop keyboard binary byte storage latency bandwidth developer
   deploy repository commit runtime model
 `),
  gardening: words(`
   garden soil seed plant flower rose tulip tree shrub leaf root compost fertilizer
   water prune harvest vegetable lettuce carrot potato bean pea weed mulch greenhouse
   bloom petal hedgerow lawn mower shovel rake spade orchard apple pear berry herb mint
   sprout germinate pollen bee irrigation sunlight spring autumn
 `),
};

/** Topic names in a fixed order (index = topic id). */
export const TOPICS: readonly string[] = Object.keys(TOPIC_WORDS);

/** Everyday words with no topic: they carry no meaning in the generated model. */
export const COMMON_WORDS = words(`
   the a an and or but if then so because of to in on at by for with from about into
   over after before under between through during without is are was were be been being
   has have had do does did will would can could should may might must i you he she it
   we they me him her us them my your his its our their this that these those there
   here what which who when where why how all some many much more most few less each
   every other another such no not only also very just even still again never always
   often today yesterday tomorrow now new old good great small large big long short
   high low first last next early late best better people time year day week way thing
   part place world life work report story news guide review notes question answer
   problem idea plan make made take took get got see saw know knew think thought say
   said use used find found give gave tell told show shows try tried keep kept start
   started help need want like look one two three four five ten hundred
 `);

/** Suffix pieces the WordPiece vocabulary holds, so inflected words split into known parts. */
export const SUFFIXES = words(`
   s es ed ing er ers ly ion ions al ment ness ful able ist ists ic y
 `);

/** A few CJK characters, so texts outside Latin script tokenize to known pieces too. */
export const CJK_CHARACTERS = words(`
   日 本 語 中 文 字 星 音 楽 医 金 花
 `);
